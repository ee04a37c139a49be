"""The napari GUI: the "U-Net" dock widget and its parts (Qt lives here only).

Nothing is imported here, so that napari can read the plugin manifest without importing
Qt widgets or torch; napari imports :mod:`.unet_widget` when the widget is opened.
"""
