"""The recurrent network: cells, the stacked model, initialisation, and the numpy oracle."""
