from app.db import with_session


class CRUDMixin:
    @classmethod
    @with_session
    def get(cls, session=None, **kwargs):
        return session.query(cls).filter_by(**kwargs).first()

    @classmethod
    @with_session
    def create(cls, fields=None, commit=True, session=None):
        item = cls()
        for key, value in (fields or {}).items():
            setattr(item, key, value)
        session.add(item)
        if commit:
            session.commit()
        else:
            session.flush()
        session.refresh(item)
        return item
