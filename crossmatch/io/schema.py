"""Column contracts of crossmatch's inputs (what users must provide for their own data).

Logs (one file with a ``source`` column, or one file per source named ``<source>.<ext>``):

=============  ===========================================================  ========
column         meaning                                                      required
=============  ===========================================================  ========
source         the data source (country, market, platform)                  per-file
user_id        user or query id (text or integer), unique within a source   yes
item_id        item id, must exist in that source's item catalogue          yes
timestamp      ISO date/datetime text, epoch seconds, or a datetime column  yes
weight         non-negative finite number (clicks, rating, dwell...)        yes
category       the item's shared coarse category, must be in the table      no
=============  ===========================================================  ========

Items (one file per source or one file with ``source``): ``item_id`` and ``category``
required; ``title`` and ``fine_category`` optional. The ICPA model's item features are the
columns named ``cat_<name>`` (categorical: integers >= 0, or text, which ingest encodes as
integer codes) and ``num_<name>`` (dense: finite numbers); any other column is kept in the
ingested items (blocking can use text columns) but is no ICPA feature.

Categories: one column ``category`` listing the shared coarse categories.
Taxonomy (optional): ``source, fine_category, category``.
"""

from __future__ import annotations

LOG_REQUIRED: tuple[str, ...] = ("user_id", "item_id", "timestamp", "weight")
LOG_OPTIONAL: tuple[str, ...] = ("source", "category")
ITEM_REQUIRED: tuple[str, ...] = ("item_id", "category")
ITEM_OPTIONAL: tuple[str, ...] = ("source", "title", "fine_category")
CATEGORY_REQUIRED: tuple[str, ...] = ("category",)
TAXONOMY_REQUIRED: tuple[str, ...] = ("source", "fine_category", "category")
CATEGORICAL_PREFIX = "cat_"  # an ICPA categorical item feature
DENSE_PREFIX = "num_"  # an ICPA dense item feature
