#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ (all but checkpoint/, which
fuzz_checkpoint_seed writes) from the repository's fixtures: cuts of data/bccd and
tests/eval/fixtures, configs/ and tests/config/fixtures, and small hand-made files for the
rules the readers' tests pin (clipping, crowd, lenient ground truth, long literals, ...).
Deterministic: rerunning it rewrites the same files. Usage: python3 fuzz/make_corpus.py
"""
import json
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def src(*parts):
    return os.path.join(ROOT, *parts)


def reset(target):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(d, name), mode) as f:
        f.write(data)


def cut_coco(path, num_images):
    """The first num_images images of a COCO json with their annotations, all categories."""
    with open(path) as f:
        doc = json.load(f)
    images = doc["images"][:num_images]
    ids = {im["id"] for im in images}
    return {
        "images": images,
        "annotations": [a for a in doc["annotations"] if a["image_id"] in ids],
        "categories": doc["categories"],
    }


def dump(doc, indent=None):
    return json.dumps(doc, indent=indent)


IMAGE = {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}
CATEGORY = {"id": 1, "name": "cell"}


def coco(images=None, annotations=None, categories=None):
    return dump({"images": [IMAGE] if images is None else images,
                 "annotations": [] if annotations is None else annotations,
                 "categories": [CATEGORY] if categories is None else categories})


def ann(i, bbox, **extra):
    a = {"id": i, "image_id": 1, "category_id": 1, "bbox": bbox}
    a.update(extra)
    return a


def coco_seeds(d):
    """Files both COCO readers take (the strict one reads them too)."""
    write(d, "empty.json", open(src("tests/config/fixtures/data/train.json")).read())
    write(d, "bccd_val_3.json", dump(cut_coco(src("data/bccd/coco/instances_val.json"), 3), 1))
    write(d, "plain_gt_2.json",
          dump(cut_coco(src("tests/eval/fixtures/plain.gt.json"), 2)))
    write(d, "crowd_remap_gt_2.json",
          dump(cut_coco(src("tests/eval/fixtures/crowd_remap.gt.json"), 2)))
    write(d, "many_ties_gt_1.json",
          dump(cut_coco(src("tests/eval/fixtures/many_ties.gt.json"), 1)))
    # Training's sanitising: clipped, outside, degenerate, crowd; an image without boxes.
    write(d, "clip_and_drop.json", coco(
        images=[IMAGE, {"id": 2, "file_name": "sub/b.png", "width": 10, "height": 10}],
        annotations=[ann(1, [-5, -5, 20, 20]), ann(2, [700, 10, 5, 5]), ann(3, [1, 1, 0, 4]),
                     ann(4, [1, 2, 3, 4], area=12.5, iscrowd=1), ann(5, [600, 400, 80, 90]),
                     ann(6, [3.5, 4.25, 1e-300, 2], iscrowd=False)]))
    # Ids as Python writes them at times (7.0), category ids unordered and sparse.
    write(d, "float_ids.json", coco(
        images=[{"id": 7.0, "file_name": "a.jpg", "width": 3, "height": 4}],
        categories=[{"id": 90, "name": "z"}, {"id": 3, "name": "y"}, {"id": -1, "name": "x"}],
        annotations=[{"id": 1.0, "image_id": 7, "category_id": 90.0, "bbox": [0, 0, 1.5, 2]},
                     {"id": 2, "image_id": 7.0, "category_id": -1, "bbox": [0, 0, 3, 4],
                      "area": 0}]))
    # A byte order mark, repeated keys (the last wins), extra keys, unicode.
    write(d, "bom_repeated_keys.json", b"\xef\xbb\xbf" + (
        '{"info": {"year": 2024}, "images": [], "images": [{"id": 1, "file_name": "\\u00e9.jpg",'
        ' "width": 5, "height": 5, "license": 3}], "categories": [{"id": 1, "name": "c\\u00e9ll",'
        ' "supercategory": "none"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1,'
        ' "bbox": [1, 1, 2, 2], "bbox": [0, 0, 5, 5], "segmentation": [[0, 0, 1, 1]]}]}'
    ).encode())
    write(d, "large_numbers.json", coco(
        images=[{"id": 9007199254740991, "file_name": "a.jpg", "width": 2147483647,
                 "height": 1}],
        annotations=[{"id": -9223372036854775808, "image_id": 9007199254740991,
                      "category_id": 1, "bbox": [1e308, -1e308, 1.7976931348623157e308, 5e-324],
                      "area": -0.0}]))


def lenient_seeds(d):
    """What only the lenient ground-truth reader takes (pycocotools does)."""
    write(d, "lenient_minimal.json", dump({
        "images": [{"id": 1}, {"id": 2, "file_name": "/abs/x.jpg"}],
        "categories": [{"id": 1}, {"id": 2, "name": 5}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 2},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4], "iscrowd": True},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": None},
            {"id": 4, "image_id": 3, "category_id": 1, "bbox": [0, 0, 5, 5]},
            {"id": 5, "image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5], "iscrowd": 1.0},
            {"id": 6, "image_id": 2, "category_id": 1, "bbox": [-3, -3, -1, 0]}]}))
    write(d, "lenient_areas.json", dump({
        "images": [{"id": 1}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [ann(i, [0, 0, s, s], area=s * s) for i, s in
                        enumerate([1, 31.9, 32, 32.1, 95.9, 96, 1000], start=1)]}))


def results_seeds(d):
    with open(src("tests/eval/fixtures/plain.dets.json")) as f:
        dets = json.load(f)
    write(d, "plain_dets_20.json", dump(dets[:20]))
    with open(src("tests/eval/fixtures/many_ties.dets.json")) as f:
        dets = json.load(f)
    write(d, "many_ties_dets_20.json", dump(dets[:20], 1))
    write(d, "empty.json", "[]")
    # Detections of fuzz_results.cpp's fixed ground truth (images 1..3, categories 1..3).
    write(d, "fixed_gt_hits.json", dump([
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [52, 50, 60, 40], "score": 0.8},
        {"image_id": 1, "category_id": 2, "bbox": [0, 0, 190, 150], "score": 0.8},
        {"image_id": 2, "category_id": 2, "bbox": [5, 5, 4, 4], "score": 0.5},
        {"image_id": 2, "category_id": 1, "bbox": [10, 10, 30, 30], "score": 0.95},
        {"image_id": 3, "category_id": 1, "bbox": [30, 40, 120, 90], "score": 0.5},
        {"image_id": 3, "category_id": 3, "bbox": [1, 1, 1, 1], "score": 0.1},
        {"image_id": 3, "category_id": 7, "bbox": [1, 1, 1, 1], "score": 0.1}]))
    # Ids written as floats, long literals (read exactly), extra keys, a byte order mark.
    write(d, "literals.json", b"\xef\xbb\xbf" + (
        '[{"image_id": 1.0, "category_id": 2, "bbox": [0.50000000000000000000001, 9000000000000'
        '000000.0, 1e-320, -0.0], "score": 1, "id": 5, "area": 3, "segmentation": []},\n'
        ' {"score": 0.25, "bbox": [1E2, 2e+1, 3.5e-1, 4], "category_id": 1, "image_id": 3}]'
    ).encode())
    write(d, "ties.json", dump([{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20],
                                 "score": 0.5} for _ in range(4)]))


def voc_seeds(d):
    for n in ("00000", "00001"):
        shutil.copy(src("data/bccd/Annotations/BloodImage_%s.xml" % n),
                    os.path.join(d, "BloodImage_%s.xml" % n))
    write(d, "difficult.xml", """<?xml version="1.0" encoding="utf-8"?>
<annotation>
  <filename>sub/a.jpg</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object><name>dog</name><difficult>1</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox></object>
  <object><name>person</name><difficult> 0 </difficult>
    <bndbox><xmin>8.5</xmin><ymin>12.</ymin><xmax>.5e3</xmax><ymax>+352</ymax></bndbox></object>
  <object><name>dog</name><difficult/>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>1</xmax><ymax>1</ymax></bndbox></object>
</annotation>
""")
    write(d, "no_filename.xml", """<annotation>
  <size><width>1000000000</width><height>1</height></size>
  <object><name><![CDATA[a &amp; b]]></name>
    <bndbox><xmin>-1e9</xmin><ymin>0</ymin><xmax>1e9</xmax><ymax>1E0</ymax></bndbox></object>
</annotation>
""")
    write(d, "entities.xml", """<!-- exported -->
<annotation>
  <filename>caf&#233; &amp; x.jpg</filename>
  <size><width>64</width><height>64</height></size>
  <object><name>&lt;cell&gt;</name>
    <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
</annotation>
""")


def config_seeds(d):
    for name in sorted(os.listdir(src("configs"))):
        shutil.copy(src("configs", name), os.path.join(d, name))
    shutil.copy(src("tests/config/fixtures/base.yaml"), os.path.join(d, "fixture_base.yaml"))
    shutil.copy(src("tests/config/fixtures/configs/tiny.yaml"),
                os.path.join(d, "fixture_tiny.yaml"))
    # --set overrides ride on "#set " comment lines (fuzz_config.cpp).
    write(d, "overrides.yaml", """base: ../base.yaml
#set loss.gamma=3
#set model.anchors.aspect_ratios=[0.5, 1, 2]
#set run.name="x: #1"
#set data.val=
loss: {cls: ohem, ohem_neg_pos_ratio: 2.5}
assigner: {kind: atss, atss_top_k: 9}
schedule:
  kind: step
  steps: [10, 20]
  gamma: 0.1
train: {max_iters: 30, max_epochs: 0, max_minutes: 0, progress: off}
""")
    write(d, "flow_and_anchors.yaml", """# flow style, anchors and aliases, quoted scalars
base: "../base.yaml"
run: {name: 'it''s', seed: 18446744073709551615, threads: 1, output_dir: ~}
model: &m
  depth: 34
  norm: gn
  gn_groups: 4
  anchors: {octave_scales: [1.0, 1.2599210498948732], base_sizes: [8, 16, 32, 64, 128]}
inference: {score_thresh: 5.0e-2, nms_thresh: .5, max_detections: 0x64}
eval: {split: val, shorter_side: 320}
optimizer: {name: adamw, lr: 1e-4, eps: 1.0e-8, nesterov: no, clip_grad_norm: .inf}
""")


def write_dicts():
    d = os.path.join(ROOT, "fuzz", "dict")
    os.makedirs(d, exist_ok=True)
    json_words = ['"images"', '"annotations"', '"categories"', '"id"', '"image_id"',
                  '"category_id"', '"bbox"', '"area"', '"iscrowd"', '"file_name"', '"width"',
                  '"height"', '"name"', '"score"', '"segmentation"', '"supercategory"',
                  'true', 'false', 'null', '1e308', '-0', '5e-324', '9007199254740993',
                  '9223372036854775807', '18446744073709551616', '0.50000000000000000000001',
                  '\\u0000', '\\ud800', '"..', '/', '\\\\', '\xef\xbb\xbf', '[', ']', '{', '}',
                  ':', ',', '1.0']
    yaml_words = ['base:', '#set ', ': ', '- ', '[', ']', '{', '}', '&a', '*a', '<<:', '!!str',
                  '!!int', '---', '...', '~', 'null', 'true', 'off', '.inf', '.nan', '0x', '"',
                  "'", '|', '>', '\\x', '\\u00e9', '../base.yaml', 'bccd_focal.yaml', '=']
    with open(src("src/config/config_fields.cpp")) as f:
        import re
        keys = sorted(set(re.findall(r'\{"([a-z_.]+)"', f.read())))
    for key in keys:
        yaml_words.append(key.split(".")[-1] + ":")
        yaml_words.append(key)
    for section in sorted({k.split(".")[0] for k in keys}) + ["anchors"]:
        yaml_words.append(section + ":")
    for value in ["focal", "ce", "alpha_ce", "ohem", "softmax_focal", "smooth_l1", "l1", "giou",
                  "max_iou", "atss", "sgd", "adamw", "bn", "frozen_bn", "gn", "p5", "c5",
                  "cosine", "step", "per_image", "num_pos", "ema", "val", "test"]:
        yaml_words.append(value)
    xml_words = ['<annotation>', '</annotation>', '<filename>', '</filename>', '<size>',
                 '</size>', '<width>', '</width>', '<height>', '</height>', '<object>',
                 '</object>', '<name>', '</name>', '<bndbox>', '</bndbox>', '<xmin>', '</xmin>',
                 '<ymin>', '</ymin>', '<xmax>', '</xmax>', '<ymax>', '</ymax>', '<difficult>',
                 '</difficult>', '<difficult/>', '<![CDATA[', ']]>', '<!--', '-->', '&amp;',
                 '&#x', '&lt;', '<?xml version="1.0"?>', '<!DOCTYPE', '..', '\\', '/', '1e9',
                 '0x10', 'inf', 'nan', '+', '.', 'e-']
    zip_words = ['PK\x03\x04', 'PK\x01\x02', 'PK\x05\x06', 'PK\x06\x06', 'PK\x06\x07',
                 'archive/data.pkl', 'archive/constants.pkl', 'archive/version', 'archive/data/',
                 'archive/code/', 'FORMAT_VERSION', '__torch__', 'torch._utils._rebuild_tensor',
                 'model', 'optimizer', 'iteration', 'log_window', 'rng', 'evaluated_iteration']

    def escape(word):
        out = ""
        for ch in word.encode("latin-1"):
            if ch == 0x22 or ch == 0x5c:
                out += "\\" + chr(ch)
            elif 0x20 <= ch < 0x7f:
                out += chr(ch)
            else:
                out += "\\x%02X" % ch
        return '"' + out + '"'

    for name, words in [("json", json_words), ("yaml", yaml_words), ("xml", xml_words),
                        ("checkpoint", zip_words)]:
        with open(os.path.join(d, name + ".dict"), "w") as f:
            f.write("# libFuzzer dictionary (-dict=), written by fuzz/make_corpus.py\n")
            seen = set()
            for w in words:
                if w not in seen:
                    seen.add(w)
                    f.write(escape(w) + "\n")


def main():
    d = reset("coco")
    coco_seeds(d)
    d = reset("ground_truth")
    coco_seeds(d)
    lenient_seeds(d)
    results_seeds(reset("results"))
    voc_seeds(reset("voc"))
    config_seeds(reset("config"))
    write_dicts()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print("%-14s %3d files %8d bytes" % (target, len(files), size))


if __name__ == "__main__":
    main()
