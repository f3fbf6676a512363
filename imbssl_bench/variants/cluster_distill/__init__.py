"""The cluster-distill room: k-means on base features (`clustering`), per-cluster experts
distilled into one student (`distill`) and the ``cluster-distill`` variant (`cluster_distill`)."""
