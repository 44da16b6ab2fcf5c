"""Storage pools and volumes of the QEMU driver: directory pools whose
volumes are real files made and inspected with qemu-img (qemu_img.py).

names.py   what a volume name may be (it can never leave the pool directory)
pools.py   QemuPoolDriver: pool definitions on disk, the default pool, volumes
"""
