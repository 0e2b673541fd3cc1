"""SOS from the phone: raised with a position, alerted at once to the grid's organisers and the
volunteers on duty nearby (urgent pushes that ignore quiet hours), acknowledged, escalated to the
district and then the city when nobody answers in time, cancelled as a false alarm or closed with a
note. Every step is an append-only event; positions sent while it is open are kept with it.
"""
