"""Xet storage: the CAS service ``hf_xet`` uploads to and downloads from, with chunk-level deduplication."""
