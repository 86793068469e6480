"""A COCO-val-sized evaluation workload (5000 images, ~36k GT, 80 categories, 100 detections
per image), deterministic. usage: scripts/make_big_eval.py OUT_DIR [images=5000]

Writes OUT_DIR/big_gt.json and OUT_DIR/big_dets.json. pycocotools' stats for the default
workload are in tests/eval/fixtures/README.md; scripts/bench_eval.sh checks against them and
bench/bench_eval.cpp rebuilds the same workload in memory (same LCG, same draws)."""
import json, os, sys, math
out = sys.argv[1]; n_img = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
os.makedirs(out, exist_ok=True)
s = 12345
def u():
    global s
    s = (1103515245 * s + 12345) % 2**31
    return s / 2**31
cats = [{"id": i + 1 + (i // 10), "name": f"c{i}"} for i in range(80)]  # non-contiguous ids like COCO
images, anns, dets = [], [], []
for i in range(n_img):
    W, H = 640, 480
    images.append({"id": i + 1, "file_name": f"{i:012d}.jpg", "width": W, "height": H})
    k = int(u() * 15)
    for _ in range(k):
        w = 4 + (u() ** 2) * 400; h = 4 + (u() ** 2) * 300
        x = u() * (W - w); y = u() * (H - h); c = cats[int(u() * 80)]["id"]
        anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 1 if u() < 0.01 else 0})
        if u() < 0.8:
            dets.append({"image_id": i + 1, "category_id": c, "bbox": [x + (u() - .5) * w * .2, y + (u() - .5) * h * .2, w * (0.9 + u() * .2), h * (0.9 + u() * .2)], "score": u()})
    while sum(1 for _ in range(0)) or len(dets) < (i + 1) * 100:
        w = 4 + u() * 300; h = 4 + u() * 300
        dets.append({"image_id": i + 1, "category_id": cats[int(u() * 80)]["id"], "bbox": [u() * 600, u() * 440, w, h], "score": u() * 0.7})
json.dump({"images": images, "annotations": anns, "categories": cats}, open(os.path.join(out, "big_gt.json"), "w"))
json.dump(dets, open(os.path.join(out, "big_dets.json"), "w"))
print(len(images), len(anns), len(dets))
