import datetime

now = datetime.datetime.utcnow
name_length = 255
