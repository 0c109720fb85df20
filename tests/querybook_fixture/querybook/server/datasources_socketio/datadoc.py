from datasources_socketio.helper import register_socket

DATA_DOC_NAMESPACE = "/datadoc"


@register_socket("subscribe", namespace=DATA_DOC_NAMESPACE)
def on_join_room(data_doc_id, mode="view"):
    pass


@register_socket("heartbeat", namespace=DATA_DOC_NAMESPACE, websocket_logging=False)
def on_heartbeat():
    pass
