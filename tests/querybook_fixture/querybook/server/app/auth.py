from flask_login import UserMixin

from app.flask_app import login_manager
from models.user import User


class AuthUser(UserMixin):
    def __init__(self, user):
        self._user_dict = {"id": user.id, "username": user.username}

    @property
    def id(self):
        return self._user_dict["id"]


@login_manager.request_loader
def load_user_from_request(request):
    """Stands in for Querybook's session and token auth: header X-Test-Uid."""
    uid = request.headers.get("X-Test-Uid")
    if not uid:
        return None
    user = User.get(id=int(uid))
    return AuthUser(user) if user else None
