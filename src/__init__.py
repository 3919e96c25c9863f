"""FieldLedger. The source lives in src/ and is installed as the package `fieldledger`."""

if __name__ != "fieldledger":  # e.g. `import src.domain...` from a checkout
    raise ImportError(
        f"import fieldledger..., not {__name__}: src/ is installed as the package "
        "fieldledger, and a second copy of every class would make isinstance fail"
    )
