"""Demo data: a deterministic county modelled on the source reports, built through the services."""
