from app.datasource import register


@register("/datadoc/", methods=["POST"])
def create_datadoc(title, environment_id, meta=None):
    return {"id": 11, "title": title, "environment_id": environment_id}


@register("/datadoc/<int:doc_id>/", methods=["GET"])
def get_datadoc(doc_id, with_cells=False):
    return {"id": doc_id, "cells": [] if with_cells else None}


@register("/query/validate/", methods=["POST"])
def validate_query(query, engine_id):
    return []
