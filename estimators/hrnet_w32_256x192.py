# HRNet-W32 (Sun et al., CVPR 2019), heatmap head, 256x192 input, exactly as mmpose trains and publishes it;
# checkpoint and published accuracy: the mmpose wheel's metafile entry for this config (hrnet_coco.yml).
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py']

card = dict(name='hrnet-w32-256x192', family='HRNet', trained_on='COCO train2017',
            description='HRNet-W32, heatmap head, 256x192 (mmpose model zoo)')
