if __name__ != "newsqa.service":  # installs as newsqa.service; imported alone it would be a second copy of every module
    raise ImportError(f"import newsqa.service, not {__name__}")
