"""Runtime helpers that make the U-Net fast and safe but are not part of the paper: the
device and precision choice, the fused inference copy, the allocator, atomic writes."""
