if __name__ != "newsqa.store":  # installs as newsqa.store; imported alone it would be a second copy of every module
    raise ImportError(f"import newsqa.store, not {__name__}")
