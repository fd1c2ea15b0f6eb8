// LaunchConfiguration: placeholder until its issue lands.
