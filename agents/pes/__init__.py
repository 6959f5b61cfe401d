"""The PES flow: Hélios PES_Aller files to the comptable through the member's TdT."""
