// Supervisor: placeholder until its issue lands.
