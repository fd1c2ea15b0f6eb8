// NetAttach: placeholder until its issue lands.
