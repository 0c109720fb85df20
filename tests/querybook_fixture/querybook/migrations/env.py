# flake8: noqa
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

from env import QuerybookSettings
from models import Base

config = context.config
fileConfig(config.config_file_name)

# The models' metadata, for autogenerate.
target_metadata = Base.metadata

config.set_main_option("sqlalchemy.url", QuerybookSettings.DATABASE_CONN)


def run_migrations_offline():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connectable = engine_from_config(
        config.get_section(config.config_ini_section),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
