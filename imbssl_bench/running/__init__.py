"""From what the user asked to records: the option table and grid files (`options`,
`gridfile`), the plan of resolved runs (`plan`), one run executed into its record
(`execute`), where runs execute (`launchers`, `worker`) and the records themselves
(`records`). Import from the modules: this package imports nothing, so the command line can
read the option table without loading torch."""
