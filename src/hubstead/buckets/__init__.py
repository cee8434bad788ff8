"""Storage buckets (the Hub's ``/api/buckets``): named folders of files stored through Xet, without git."""
