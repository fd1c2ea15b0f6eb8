print("kvm-launch: under construction")
