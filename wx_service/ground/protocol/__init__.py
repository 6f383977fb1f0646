"""WeChat Official Account protocol glue: signatures, message crypto, XML, replies.

Pure functions and small classes, no Flask and no database, so that the webhook, the emulator and
the tests all speak exactly the same bytes.
"""
