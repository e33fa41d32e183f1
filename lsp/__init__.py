"""The dfc language server (``dfc lsp``): diagnostics, completion and navigation for .dsql files."""
