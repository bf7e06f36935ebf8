"""Batch image processing: pipelines of npaccel.filters and pixel ops over folders of images.

(Public API is assembled here once the modules land.)
"""
