"""The load engine (no pytest here): arrival schedules, an open-model runner that measures
from intended send times, and HdrHistogram statistics that merge exactly across shards.
"""
