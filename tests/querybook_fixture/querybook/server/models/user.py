import sqlalchemy as sql

from app import db
from const.db import name_length
from lib.sqlalchemy import CRUDMixin

Base = db.Base


class User(CRUDMixin, Base):
    __tablename__ = "user"

    id = sql.Column(sql.Integer, primary_key=True)
    username = sql.Column(sql.String(length=name_length))
