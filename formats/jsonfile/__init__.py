"""Docker's json-file log driver format: ``writer`` (what the monitor writes) and ``parser``
(what ``box logs`` and the shipper read). Byte-for-byte moby's; see each module."""
