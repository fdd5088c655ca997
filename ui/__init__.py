"""App-side logic of GenScope (model registry, validation, views glue, interventions, export),
kept out of app.py so the app file only lays out and wires the interface."""
