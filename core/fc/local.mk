# Firecracker driver (core/fc)
