import numpy as np
import pytest
from PIL import Image

from pipeline.errors import CorruptFileError, UnsupportedFileError
from pipeline.read import count_pages, list_documents, read_pages


def page_image(value: int, size=(620, 877), mode="L") -> Image.Image:
    img = Image.new(mode, size, 255 if mode == "L" else (255, 255, 255))
    img.paste(value if mode == "L" else (value, value, value), (100, 100, 300, 140))
    return img


def test_pdf_pages_render_at_the_embedded_scan_dpi(tmp_path):
    path = tmp_path / "two pages 扫描.pdf"
    first, second = page_image(0), page_image(60)
    first.save(path, "PDF", resolution=75, save_all=True, append_images=[second])
    assert count_pages(path) == 2
    pages = list(read_pages(path))
    assert [p.number for p in pages] == [1, 2]
    assert all(p.dpi == 75 for p in pages)
    assert pages[0].image.shape == (877, 620)
    assert pages[0].image.dtype == np.uint8
    assert pages[0].image[120, 200] < 30 and pages[0].image[10, 10] > 240


def test_only_the_requested_pages_are_rendered(tmp_path):
    path = tmp_path / "doc.pdf"
    page_image(0).save(path, "PDF", resolution=75, save_all=True, append_images=[page_image(60), page_image(120)])
    pages = list(read_pages(path, [3]))
    assert [p.number for p in pages] == [3]
    assert 100 <= pages[0].image[120, 200] <= 140


def test_colour_pages_keep_the_red_channel_so_red_seals_fade(tmp_path):
    img = Image.new("RGB", (400, 400), (250, 248, 240))
    img.paste((200, 30, 30), (50, 50, 150, 150))  # seal red
    img.paste((20, 20, 20), (200, 200, 300, 240))  # black print
    path = tmp_path / "colour.png"
    img.save(path, dpi=(200, 200))
    (page,) = read_pages(path)
    assert page.was_colour and page.dpi == 200
    assert page.image[100, 100] >= 195
    assert page.image[220, 250] <= 25


def test_multi_page_tiff(tmp_path):
    path = tmp_path / "scan.tiff"
    page_image(0).save(path, save_all=True, append_images=[page_image(80), page_image(160)], dpi=(150, 150))
    pages = list(read_pages(path))
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[2].image[120, 200] == 160


def test_image_without_dpi_is_assumed_a4(tmp_path):
    path = tmp_path / "nodpi.png"
    Image.new("L", (2480, 3508), 255).save(path)
    (page,) = read_pages(path)
    assert page.dpi == 300


def test_empty_and_wrong_files_are_named_errors(tmp_path):
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty.pdf"):
        list(read_pages(empty))
    text = tmp_path / "notes.pdf"
    text.write_text("not a pdf at all")
    with pytest.raises(UnsupportedFileError, match="notes.pdf"):
        list(read_pages(text))


def test_folders_are_searched_for_documents(tmp_path):
    (tmp_path / "a").mkdir()
    page_image(0).save(tmp_path / "a" / "x.png")
    page_image(0).save(tmp_path / "y.pdf", "PDF")
    (tmp_path / "readme.txt").write_text("skip me")
    found = list_documents([tmp_path])
    assert sorted(p.name for p in found) == ["x.png", "y.pdf"]


# --- a page that is only its scan is taken from the scan's own bytes --------------------------------------

def scan_like(size=(827, 1169), mode="L", seed=0) -> Image.Image:
    """An A4 page at 100 dpi with ruled boxes, blocks of 'text' and paper noise: enough structure that a
    mirrored or shifted copy of it differs."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(235, 6, (size[1], size[0])), 0, 255).astype(np.uint8)
    pixels[100:103, 80:750] = 20
    pixels[100:900, 80:83] = 20
    for k in range(12):
        pixels[130 + 60 * k : 150 + 60 * k, 100 : 160 + 35 * k] = 40
    img = Image.fromarray(pixels)
    if mode == "RGB":
        img = img.convert("RGB")
        img.paste((200, 30, 30), (500, 500, 650, 650))  # a red seal
    return img


@pytest.fixture
def renders(monkeypatch):
    """The resolutions poppler is asked to render pages at while the test runs."""
    import pdf2image

    asked: list[int] = []
    real = pdf2image.convert_from_path

    def spy(*args, **kwargs):
        asked.append(kwargs.get("dpi"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf2image, "convert_from_path", spy)
    return asked


def scan_in(path) -> np.ndarray:
    """The pixels of the PDF's only image, its JPEG bytes decoded by Pillow."""
    import io

    from pypdf import PdfReader

    (image,) = PdfReader(str(path)).pages[0]["/Resources"]["/XObject"].values()
    return np.asarray(Image.open(io.BytesIO(image.get_object().get_data())).convert("RGB"))


def rendered(path, dpi, grey=True) -> np.ndarray:
    from pdf2image import convert_from_path

    (page,) = convert_from_path(str(path), dpi=dpi, grayscale=grey)
    return np.asarray(page)


def test_a_page_that_is_only_its_scan_is_read_from_the_scan_without_rendering_it(tmp_path, renders):
    from tests.hostile_inputs import save_pdf

    path = save_pdf(tmp_path / "scan.pdf", [scan_like()], dpi=100)
    (page,) = read_pages(path)
    assert renders == [24]  # only the thumbnail that vouches for the scan
    assert page.dpi == 100 and page.image.shape == (1169, 827)
    assert (page.image == scan_in(path)[:, :, 0]).all()


def test_a_colour_scan_taken_from_its_bytes_keeps_the_red_channel(tmp_path, renders):
    from tests.hostile_inputs import save_pdf

    path = save_pdf(tmp_path / "colour.pdf", [scan_like(mode="RGB")], dpi=100)
    (page,) = read_pages(path)
    assert renders == [24] and page.was_colour
    assert page.image[575, 575] >= 190  # the seal nearly vanishes
    assert page.image[140, 120] <= 60  # black print stays
    assert (page.image == scan_in(path)[:, :, 0]).all()


def test_an_invisible_text_layer_over_the_scan_still_lets_the_scan_be_taken(tmp_path, renders):
    from tests.hostile_inputs import save_pdf, with_text_layer

    source = save_pdf(tmp_path / "scan.pdf", [scan_like()], dpi=100)
    path = with_text_layer(tmp_path / "ocred.pdf", source, ["Project performance self-evaluation"] * 20)
    (page,) = read_pages(path)
    assert renders == [24]
    assert (page.image == scan_in(source)[:, :, 0]).all()


@pytest.mark.parametrize("how", ["mirrored", "visible text over it", "turned", "inside a margin"])
def test_a_page_that_is_more_than_its_scan_is_rendered(tmp_path, renders, how):
    from tests.hostile_inputs import placed_scan_pdf, rotated_pdf, save_pdf, with_text_layer

    scan = scan_like()
    plain = save_pdf(tmp_path / "plain.pdf", [scan], dpi=100)
    path = {
        "mirrored": lambda: placed_scan_pdf(tmp_path / "m.pdf", scan, 100, mirrored=True),
        "visible text over it": lambda: with_text_layer(
            tmp_path / "t.pdf", plain, ["ARCHIVE 2021-0042 " * 3] * 30, invisible=False
        ),
        "turned": lambda: rotated_pdf(tmp_path / "r.pdf", plain, 90),
        "inside a margin": lambda: placed_scan_pdf(tmp_path / "i.pdf", scan, 100, margin_pt=36),
    }[how]()
    (page,) = read_pages(path)
    assert 100 in renders  # rendered at the scan's resolution
    assert (page.image == rendered(path, 100)).all()


def test_the_hand_placed_scan_is_taken_as_is_when_placed_plainly(tmp_path, renders):
    """The control for the mirrored case above: the same hand-written file, placed plainly, is taken."""
    from tests.hostile_inputs import placed_scan_pdf

    path = placed_scan_pdf(tmp_path / "p.pdf", scan_like(), 100)
    (page,) = read_pages(path)
    assert renders == [24]
    assert (page.image == scan_in(path)[:, :, 0]).all()
