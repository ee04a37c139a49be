"""Model interchange: BioImage Model Zoo packages (export, import, their docs) and
TorchScript files for tools without Python."""
