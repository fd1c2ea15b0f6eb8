// ConfigAgent: placeholder until its issue lands.
