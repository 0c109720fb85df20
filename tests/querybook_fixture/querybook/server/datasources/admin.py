from app.datasource import register


@register("/admin/announcement/", methods=["GET"])
def get_announcements_admin():
    return []
