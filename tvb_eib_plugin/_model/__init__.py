"""The model, written once: node equations, coupling, integration steps, the network pytrees, BOLD (private)."""
