if __name__ != "newsqa.eval":  # installs as newsqa.eval; imported alone it would be a second copy of every module
    raise ImportError(f"import newsqa.eval, not {__name__}")
