"""The command line (cli), ``predeploy init`` (scaffold), the generated reference docs (docs) and
the kit the step scripts are written with (scriptkit)."""
