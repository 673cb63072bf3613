if __name__ != "newsqa.ingest":  # installs as newsqa.ingest; imported alone it would be a second copy of every module
    raise ImportError(f"import newsqa.ingest, not {__name__}")
