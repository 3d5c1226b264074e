"""The parts of the ``migrate`` kind (steps/migrate.py): Flyway's formats, the SQL text,
the schema history and running one file. Only ``cockpit.steps.migrate`` uses them."""
