"""Device I/O and signal decoders for geosensord.

This package is a library: it knows nothing of Redis or of the daemon, keeps no
global state, and its decoders are pure functions over bytes and numpy arrays.
"""
