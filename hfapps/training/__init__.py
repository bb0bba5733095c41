"""`hfapps train` and its companions: the runner (`runner`, read top to bottom), recipes (`recipe`: parsing and
the model keys; the data keys are `hfapps.tasks.arguments`), a recipe's data splits (`splits`), scoring with the
task's helper (`evaluation`), hyperparameter search (`tune`), distillation (`distill`), LoRA adapters (`adapters`),
what keeps a run safe under faults (`resilience`), and what a run writes beside the model (`artifacts`)."""
