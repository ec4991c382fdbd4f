import numpy as np
import pytest
from PIL import Image

from pipeline.errors import CorruptFileError, UnsupportedFileError
from pipeline.read import _to_grey, count_pages, list_documents, read_pages


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


def test_a_long_pdf_is_rendered_one_page_at_a_time(tmp_path, monkeypatch):
    import pdf2image

    path = tmp_path / "long.pdf"
    page_image(0).save(path, "PDF", resolution=75, save_all=True, append_images=[page_image(v) for v in range(10, 200, 10)])
    rendered = []
    real = pdf2image.convert_from_path

    def convert(*args, **kwargs):
        rendered.append((kwargs["first_page"], kwargs["last_page"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf2image, "convert_from_path", convert)
    pages = read_pages(path)
    assert rendered == []  # nothing rendered before a page is asked for
    first = next(pages)
    assert rendered == [(1, 1)] and first.number == 1
    assert [p.number for p in pages] == list(range(2, 21)) and rendered == [(n, n) for n in range(1, 21)]


def test_a_pages_embedded_scan_is_listed_for_that_page_alone(tmp_path):
    from pipeline.read import _embedded_scans

    import subprocess

    parts = [tmp_path / f"{n}.pdf" for n in range(3)]
    for part, dpi in zip(parts, (75, 150, 75)):
        page_image(60).resize((int(8.27 * dpi), int(11.69 * dpi))).save(part, "PDF", resolution=dpi)
    path = tmp_path / "mixed.pdf"
    subprocess.run(["pdfunite", *map(str, parts), str(path)], check=True)
    assert _embedded_scans(path) == {1: (75, False), 2: (150, False), 3: (75, False)}
    assert _embedded_scans(path, 2, 2) == {2: (150, False)}
    (page,) = read_pages(path, [2])
    assert page.dpi == 150


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


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "CMYK", "YCbCr"])
def test_every_colour_mode_gives_the_red_channel_of_its_rgb_rendering(mode):
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 256, (60, 45, 3), dtype=np.uint8), "RGB").convert(mode)
    grey = _to_grey(img)
    assert grey.dtype == np.uint8 and grey.flags.writeable and grey.shape == (60, 45)
    assert np.array_equal(grey, np.asarray(img.convert("RGB"))[:, :, 0])


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
