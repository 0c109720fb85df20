from flask_login import current_user

from app.datasource import register


@register("/user/me/", methods=["GET"])
def get_my_user_info():
    return {"uid": current_user.id}
