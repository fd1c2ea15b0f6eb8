// DHCPServer: placeholder until its issue lands.
