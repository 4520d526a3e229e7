"""The MongoDB side: keys-only reads, raw-batch splitting, change feeds.

The only package that imports ``pymongo`` or ``bson``.
"""
