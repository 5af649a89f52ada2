"""Image files a hostile or unlucky user hands the package: a decompression bomb, a photo turned by its EXIF tag."""
import io
import struct
import zlib

from PIL import Image


def bomb_png(side: int = 20000) -> bytes:
    """A valid PNG header announcing ``side`` x ``side`` pixels (400 million at 20000: above twice Pillow's
    ``MAX_IMAGE_PIXELS``) over a 1x1 image's data: Pillow refuses it on opening, before any decoding."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", side, side)  # IHDR width and height, after the signature, length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR's CRC covers its type and data
    return bytes(data)


def exif_turned_jpeg(upright: Image.Image) -> bytes:
    """``upright`` as a phone held on its side stores it: pixels turned a quarter, EXIF Orientation 6
    ("turn 90 degrees clockwise to view")."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, subsampling=0, exif=exif)
    return buffer.getvalue()
