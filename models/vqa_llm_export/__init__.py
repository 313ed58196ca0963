"""Exporter of vqa-llm model folders (see models/README.md for the folder contract)."""

EXPORTER_NAME = "vqa-llm-export"
EXPORTER_VERSION = "0.1.0"
FORMAT_VERSION = 1
