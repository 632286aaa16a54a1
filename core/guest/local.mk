# guest access: ssh identity, known_hosts, key injection (core/guest)
