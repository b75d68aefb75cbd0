"""The command line ``tvb-eib`` (private; ``python -m tvb_eib_plugin`` runs it too)."""
