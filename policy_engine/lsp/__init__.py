"""`policyctl lsp`: a language server for policy files (diagnostics, hover,
completion, definitions and references, formatting, quick fixes), on pygls."""
